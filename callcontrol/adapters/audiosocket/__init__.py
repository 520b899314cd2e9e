"""Asterisk AudioSocket (chan_audiosocket): the server that receives a browser listen's audio."""
