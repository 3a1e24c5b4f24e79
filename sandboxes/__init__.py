"""Local, faithful imitations of Salesforce, an Odoo ERP and a Stripe-compatible payments platform."""
