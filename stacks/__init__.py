"""CDK constructs of the invoice pipeline (DESIGN §7); ``stacks.app.configure_app`` builds the app."""
