"""`rs explore`: a read-only web app over the lab's DuckDB, and its export, the report folder."""
