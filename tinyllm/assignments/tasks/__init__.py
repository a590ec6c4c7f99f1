"""The assignment files (teacher's versions, with solutions). Not modules to import: each
runs its tests when executed. Read them, release them, grade with them."""
