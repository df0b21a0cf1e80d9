import { render } from "preact";

import { resume } from "./app/state";
import { App } from "./components/App";
import "./styles.css";
import { language } from "./i18n";

document.documentElement.lang = language.value;
const root = document.getElementById("app");
if (root) render(<App />, root);
if (location.pathname !== "/reset-password") void resume();
