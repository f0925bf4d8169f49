"""The bundled synthetic streams: bike stations (the demo's) and M5-like store sales."""
