"""What a deletion request is and what becomes of it, in its own types, with the ports it needs from the outside
world (``ports``). Nothing here knows an event shape, HTTP, or an adapter."""
