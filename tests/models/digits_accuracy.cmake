# The bundled digits model, run through inferd-run on its held-out split, must reach 95%.
execute_process(COMMAND ${RUN} --model ${SRC}/models/zoo/digits/1/model.onnx
                        --input_dir ${SRC}/models/zoo/digits/heldout --output_dir ${OUT}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "inferd-run failed: ${rc}")
endif()
execute_process(COMMAND /usr/bin/python3 ${SRC}/models/zoo/check_digits_accuracy.py
                        --outputs ${OUT}/output_0.pb
                        --labels ${SRC}/models/zoo/digits/heldout/labels.pb --min 0.95
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "digits accuracy below 0.95")
endif()
