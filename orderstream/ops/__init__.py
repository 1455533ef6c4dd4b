"""Operations: status and lag, dead letters."""
