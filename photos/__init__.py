"""Faces in whole photographs: detection, landmarks, alignment to the training template, pasting back, and the parsing maps built from landmarks."""
