"""First-session success: the model's training lifecycle and pre-session alerts for upcoming first sessions."""
