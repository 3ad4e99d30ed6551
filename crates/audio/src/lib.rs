//! Sample formats shared by the DTMF engine, the media relay and the offline tools.
