"""The local stack: template.yaml run on one machine, with an embedded AWS emulation and no AWS account."""
