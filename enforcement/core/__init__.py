"""The domain: plates, local time, rules, the permit index and its snapshot, the live index
(snapshot plus permit changes), verdicts and the police view.

Pure computation: nothing here imports asyncio, Redis or aiohttp, so every rule can be tested
as a table and every lookup against a naive model.
"""
