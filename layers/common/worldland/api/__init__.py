"""HTTP adapter: Powertools routers per API area, the error mapping, and the wiring to the DAL."""
