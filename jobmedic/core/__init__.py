"""The ground floor: plain types and helpers every package may use (time windows, scope,
units). It imports nothing from jobmedic, so the store can use it as freely as the tools."""
