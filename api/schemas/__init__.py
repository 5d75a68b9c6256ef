"""Response models of the JSON API that are not a table's own shape."""
