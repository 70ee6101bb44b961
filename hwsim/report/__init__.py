"""Reports: tables on the console, CSV/JSON files, figures and summary.json."""
