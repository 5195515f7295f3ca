"""What a deletion request is and what becomes of it. Nothing here knows an event shape or HTTP."""
