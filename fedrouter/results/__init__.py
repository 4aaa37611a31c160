"""What a run leaves behind and how it is read: the run folder, seed tables, the scenario report and its plots."""
