"""Pure model builders: functions from params to Keras models."""

# Registers the custom layers, so that any saved model using them loads after importing models.
from latentlab.models import layers  # noqa: F401
