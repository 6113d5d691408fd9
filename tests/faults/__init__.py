"""Fault campaigns: sends through misbehaving SMTP and Mailgun-like servers, and kill -9."""
