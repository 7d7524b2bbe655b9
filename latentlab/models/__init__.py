"""Pure model builders: functions from params to Keras models."""
