"""The console's pages: each module's ``add_routes(app)`` adds its routes to the console."""
