"""Helpers the tests import like any code: the secret guard, in-process stacks, API events, template reading."""
