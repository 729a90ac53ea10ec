"""smscore."""
