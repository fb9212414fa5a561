"""StudentSuccess, previewed locally: the retention dashboard over a debug sync's warehouse.

A dev-side room of its own, never deployed (deploy.sh ships the runtime files only). Start it
with `./student_success.sh`. `warehouse` holds every query (DuckDB and pandas, no Streamlit),
`charts` the Altair charts, `app` the Streamlit page.
"""
