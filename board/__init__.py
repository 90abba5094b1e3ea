"""The 311 Dispatch Board. Packages, outermost first (pyproject.toml's import-linter
contracts hold them to this order): cli, web, bootstrap, live, accountability and intake,
usecases, auth, geo and observability, storage, domain, settings."""
