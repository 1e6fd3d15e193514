"""Brand kits: a tenant's palette, logo and type, and how well an output keeps to them."""
