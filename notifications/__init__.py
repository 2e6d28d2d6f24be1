"""In-app notifications, with an email copy sent once the transaction commits."""
