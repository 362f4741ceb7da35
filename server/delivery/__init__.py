"""Delivery of prompts: Web Push, FCM, APNs and the inbox, through a transactional outbox."""
