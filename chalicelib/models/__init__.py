"""PynamoDB models, one module per aggregate; each table is defined once in infra/template.yaml."""
