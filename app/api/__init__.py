"""HTTP layer: routers, schemas, dependencies, errors."""
