"""Pure parsers of nodetool output; each raises ParseError on a layout it does not know."""
