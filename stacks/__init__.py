"""CDK constructs of the invoice pipeline (docs/architecture.md §12); ``stacks.app.configure_app`` builds the app."""
