"""What the teacher hands to the distillation, imported by both (neither imports the other).

- ``outputs``         the teacher outputs folder format: file names, manifest, writer, ``TeacherOutputs``, ``to_dense``
- ``outputs_reader``  load_teacher_outputs: read a folder and check it against this run's data
- ``text_matrix``     the whitespace-separated ``*_train.txt`` matrices, with line-precise errors
- ``selection``       selection policies (config group ``active``): which training rows get teacher knowledge,
                      used by the export and by the distillation stage
"""
