"""Model registry: every trained model versioned (file + row), one live version per kind, champion/challenger."""
