"""The sample app: the company's side, streaming users and reading their answers."""
