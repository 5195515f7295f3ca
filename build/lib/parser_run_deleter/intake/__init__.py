"""Thin handlers: read a trigger's event, call one logic function, map the result to the trigger's answer."""
