"""The office's side: the embedded service's HTTP API, the dashboard, reports and the ledger."""
