"""The only modules that talk to the network: Stripe (transport and calls) and SMTP."""
