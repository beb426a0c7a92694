"""Pure board maths of the ranking service: periods, board keys, scores, names."""
