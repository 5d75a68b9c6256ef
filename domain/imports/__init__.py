"""Loading external logs (CSV files) through the same ingestion services the API uses."""
