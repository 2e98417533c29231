"""Tests of classical learning (EM, Viterbi training, supervised estimation)."""
