"""The live Textual dashboard. Reads only ``events.jsonl``; never imports torch."""
