"""The customer portal: magic-link sign-in, the customer's tickets, replies, solve/reopen."""
