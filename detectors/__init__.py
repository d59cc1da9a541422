"""Pure detection code: statistics and one module per signal family. No I/O here."""
