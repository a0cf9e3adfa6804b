"""The model runtime: loading a trained model and scoring schema-code rows."""
