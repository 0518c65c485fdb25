"""Agent processes that run against a live engine: synthetic order flow (``flow``) and a recorded market
(``market``: a LOBSTER day or a Binance capture replayed live, ``proptrade up --market``; ``market_replay`` paces
and checks the replay, ``market_link`` runs the replays over a client link). Each is a module runnable as
``python -m hotpath.agents.<name> --prefix RUN ...``; the launcher (``proptrade up``) starts them from its
config. The market makers are strategies (``strategies/``; the launcher runs them as ``strategies.agent``)."""
