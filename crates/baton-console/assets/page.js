// The page shell: nothing yet beyond what the markup does on its own.
"use strict";
