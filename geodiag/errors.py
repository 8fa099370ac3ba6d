"""One exception type for every user-facing failure: its message is a sentence saying what is wrong and
what to do. The CLI prints it without a traceback; the pages show it with st.error."""


class GeodiagError(Exception):
    """A problem the user can fix; str(e) is the whole message."""


class StoreError(GeodiagError):
    """The store file is missing, foreign, corrupt or locked, or a run id is unknown."""
