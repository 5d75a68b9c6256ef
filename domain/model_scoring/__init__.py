"""The ML churn model's daily scores on the prediction rows, and the rules-file switch for which score drives
interventions (rules/scoring.yaml ``model.drives_interventions``)."""
