"""WebSub (W3C Recommendation, 2018) subscriber: feeds pushed by their hub instead of polled.

How a source is fed, and the modules that do it:

- ``records.py``     the ``defaults.push`` settings and the stored :class:`Subscription`
- ``protocol.py``    hub discovery (``Link:`` headers, ``<link rel="hub">``), the hub requests
                     (subscribe, unsubscribe) and ``X-Hub-Signature`` checks
- ``subscriber.py``  the subscription lifecycle (subscribe, verify intent, renew, unsubscribe
                     removed sources) and pushed content handed to the poller's own path
- ``schedule.py``    the poll interval of a source while it is (being) pushed: the runner's hook
- ``server.py``      the callback served by ``newsmon push`` (Starlette on uvicorn)

Without ``defaults.push.callback_url`` nothing here runs and every source is polled.
"""
