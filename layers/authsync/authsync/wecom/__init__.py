"""WeCom's protocol, no AWS.

Callback signature and cipher, hardened XML, typed events, the HTTP API client and its
errors, the auth-info and chatdata documents.

Empty on purpose: importing the package imports nothing (cold start).
"""
