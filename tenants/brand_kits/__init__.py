"""Brand kits (docs/brand-kits.md): a tenant's, a team's or a customer's colours, fonts,
logos, default voice and words, versioned, applied to generations by `gateway.brand_kits`."""
